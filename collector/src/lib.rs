//! The collector: subscriber, policy engine, timeseries and alert store (issue 4 onwards).
