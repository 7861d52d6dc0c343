"""tracer.capture"""
