//! Transports: in-process kube::Client and HTTP. (Skeleton: filled in by issue 3.)
