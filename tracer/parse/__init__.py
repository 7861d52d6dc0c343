"""tracer.parse"""
