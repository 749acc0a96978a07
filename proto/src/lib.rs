//! `failover-proto`: the gRPC schema spoken between site controllers,
//! witnesses and `failoverctl`, and the types tonic and prost generate from
//! it. It holds nothing else: no conversion, no validation, no logic. The
//! drivers convert these wire types into `failover-core` types at the edge
//! and reject whatever does not fit before it reaches the protocol.

#![allow(missing_docs)]

/// Generated from `proto/failover.proto`.
pub mod v1 {
    tonic::include_proto!("failover.v1");
}
