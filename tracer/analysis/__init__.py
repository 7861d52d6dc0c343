"""tracer.analysis"""
