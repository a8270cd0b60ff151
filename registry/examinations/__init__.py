"""Examination submission, amendment and withdrawal; persons and their documents."""
