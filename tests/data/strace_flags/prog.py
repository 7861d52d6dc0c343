import os, threading
def w():
    fd = os.open("/etc/hostname", os.O_RDONLY); os.read(fd, 64); os.close(fd)
ts = [threading.Thread(target=w) for _ in range(2)]
[t.start() for t in ts]; [t.join() for t in ts]
w()
