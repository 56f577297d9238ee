"""Modeling: training sets (:mod:`~leadml.modeling.trainset`), the candidate models and their
search (:mod:`~leadml.modeling.models`), monotone calibration (:mod:`~leadml.modeling.calibration`),
training on time windows (:mod:`~leadml.modeling.training`), evaluation against the rule score
(:mod:`~leadml.modeling.evaluation`), the fitness gate (:mod:`~leadml.modeling.fitness`), the
leakage guard (:mod:`~leadml.modeling.leakage`), the model card and plots
(:mod:`~leadml.modeling.card`, :mod:`~leadml.modeling.plots`). Nothing here knows MLflow."""
