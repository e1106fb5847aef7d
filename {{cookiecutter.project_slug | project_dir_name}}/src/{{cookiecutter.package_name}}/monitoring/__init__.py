"""Monitoring and the feedback loop: prediction log, drift, performance, report, retrain trigger.

``prediction_log`` is imported by the service and batch scoring; everything else runs in the
``monitor``, ``drift-demo`` and ``fold-labels`` commands. Nothing heavy is imported here.
"""
