"""Monitoring and the feedback loop: drift, performance, the report and the retrain trigger.

The prediction log they read is :mod:`..prediction_log`. The train step records each model's
reference profile (:mod:`.reference`); the rest runs in the ``monitor``, ``drift-demo`` and
``fold-labels`` commands. Nothing heavy is imported here.
"""
