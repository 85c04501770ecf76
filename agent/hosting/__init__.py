"""The hosted agent peer (`peer`, which reads the chat for prompts with `chat_prompts`) and where
it lives (`placement`): one per room, on this node or, in cluster mode, on the node holding the
room's lease (`cluster_placement` over the leases and queues of `cluster`); when it must be there
for behaviours (`residency`)."""
