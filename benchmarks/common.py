"""What every suite here shares: each sample times one call on the state ``setup`` built."""


class FreshState:
    """One call per sample, no warm-up call.

    asv_runner re-runs ``setup`` (and ``teardown``) around every sample, so with
    ``number = 1`` each timed call starts from fresh state (a restored book, a new
    trace database, ...) and state-changing work can be timed; a warm-up call would
    change that state before the sample.
    """

    number = 1
    warmup_time = 0
