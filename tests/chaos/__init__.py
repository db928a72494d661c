"""Tests that kill processes while the system works."""
