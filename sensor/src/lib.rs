//! The sensor: capture, decoding, flow table, L7 dissectors and the publisher (issue 3 onwards).
