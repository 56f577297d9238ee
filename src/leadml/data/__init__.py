"""The data layer: the four tables read (:mod:`~leadml.data.readers`), validated
(:mod:`~leadml.data.validation`) and loaded into one in-process database
(:mod:`~leadml.data.tables`); the as-of logic, the one place that knows time
(:mod:`~leadml.data.asof`); lead and account attributes as of an instant
(:mod:`~leadml.data.attributes`); population profiles and drift (:mod:`~leadml.data.profiles`)."""

from leadml.data.tables import LeadData, load_data

__all__ = ["LeadData", "load_data"]
