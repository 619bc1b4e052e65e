"""Test support for the system under test: an in-memory API and the controllers as processes.

At the repository root and outside the wheel and the image, so what ships carries no test code; nothing that ships
imports it (import-linter says so).
"""
