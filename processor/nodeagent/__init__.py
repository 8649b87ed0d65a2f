"""A node agent for a real Kubernetes control plane on one machine: it registers a Node, keeps
its Lease fresh and runs the pods bound to it as local processes (the project's image maps to
the project's virtualenv). A development and test tool like `processor.scaledjob`, beside the
Job: it shares no code with the Job's modules. What it does not model is in
docs/real-control-plane.md."""
