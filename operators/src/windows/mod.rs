//! Event-time tumbling windows over classified events.
