"""Code Mode agent: the model writes JavaScript that runs in agent.sandbox."""
