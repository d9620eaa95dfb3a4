/** The generated messages and service of balance.v1 (src/gen/, made by `make proto`), in one place. */
export * from "./gen/balance/v1/balance_pb.js";
export { ErrorInfoSchema } from "./gen/google/rpc/error_details_pb.js";
export type { ErrorInfo } from "./gen/google/rpc/error_details_pb.js";
