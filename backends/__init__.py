"""symbiote.backends"""
