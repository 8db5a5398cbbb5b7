"""Magnifier implementations. See ``base.Magnifier`` for the contract."""
