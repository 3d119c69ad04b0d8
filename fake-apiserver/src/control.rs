//! Fault injection and the request log. (Skeleton: filled in by issue 3.)
