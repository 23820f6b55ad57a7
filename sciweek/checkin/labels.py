"""Translated names of how a check-in was made: kept in the shared core
(``sciweek.method_labels``, the cadre's training record names them too)."""

from __future__ import annotations

from ..method_labels import METHOD_LABELS, method_label

__all__ = ["METHOD_LABELS", "method_label"]
