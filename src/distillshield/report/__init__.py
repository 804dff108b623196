"""Self-contained HTML triage report for detected distillation campaigns (``DET/report.html``).

One file, inline CSS and SVG, no scripts and no external references: it opens offline, can be
attached to a ticket, and renders attacker-controlled strings only as escaped text.
"""

from __future__ import annotations

from distillshield.report._html import render_report, write_report

__all__ = ["render_report", "write_report"]
