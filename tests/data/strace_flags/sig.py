import os, signal
signal.signal(signal.SIGUSR1, lambda *a: None)
os.kill(os.getpid(), signal.SIGUSR1)
pid = os.fork()
if pid == 0:
    os._exit(3)
os.waitpid(pid, 0)
