"""symbiote.frontend"""
