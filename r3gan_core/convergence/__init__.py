"""The convergence toys: Dirac-GAN and DiracRpGAN (`dirac`) and 2D Gaussian mixtures with small MLPs (`toy`)."""
