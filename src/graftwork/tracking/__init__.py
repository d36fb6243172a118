"""Experiment tracking (``--log-to tensorboard|mlflow``): the settings, every epoch's metrics, the findings and
the run folder, recorded where people already look (optional extras: ``pip install graftwork[tensorboard]``,
``graftwork[mlflow]``)."""

from .base import Tracker
from .session import FitSession, TrackingCallback, fit_session, open_trackers

__all__ = ["FitSession", "Tracker", "TrackingCallback", "fit_session", "open_trackers"]
