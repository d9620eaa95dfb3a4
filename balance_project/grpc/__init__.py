"""The gRPC sidecar: balance.v1.BalanceService over plain grpcio (see docs/grpc.md)."""
