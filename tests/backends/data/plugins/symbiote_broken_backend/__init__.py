"""A backend plugin that fails to import (tests check it is reported by name, not fatal)."""

raise ImportError("symbiote_broken_backend needs a library that is not installed")
