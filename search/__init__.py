"""symbiote.search"""
