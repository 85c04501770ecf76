"""What a prompt must get past before it costs anything: rate limits (per node, `admission`;
shared by a cluster's nodes, `shared`) and bounded queues."""
