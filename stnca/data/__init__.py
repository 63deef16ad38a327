"""Training data: PDE simulators and initial conditions, images, augmentation, .npy I/O."""
