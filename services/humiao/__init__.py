"""Humiao (护苗): streaming verification of child-welfare allowances."""

__version__ = "0.1.0"
