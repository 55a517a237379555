"""How much one call to the gateway may carry (each message is also at most
HUMIAO_GRPC_MAX_RECEIVE_BYTES). Apart from the servicer so that clients read them cheaply."""

#: Events in one SubmitBatch.
MAX_BATCH_EVENTS = 5_000
#: Events in one SubmitStream; the stream is refused past it (those before are answered).
MAX_STREAM_EVENTS = 100_000
