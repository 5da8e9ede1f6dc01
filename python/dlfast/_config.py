"""What the small objects rebuilt from their ``get_config()`` share (regularizers, schedules)."""


class FromConfig:
    """Base for objects whose ``get_config()`` holds exactly their constructor's keyword
    arguments: ``cls.from_config(obj.get_config())`` rebuilds the object, and ``repr`` shows
    that constructor call."""

    def get_config(self):
        raise NotImplementedError(f"{type(self).__name__} must define get_config()")

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    def __repr__(self):
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_config().items())
        return f"{type(self).__name__}({args})"
