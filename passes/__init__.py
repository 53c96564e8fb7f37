"""symbiote.passes"""
