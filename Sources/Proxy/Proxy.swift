// Kubernetes Services and EndpointSlices to IPVS: model, desired state, plan, reconciler.
