"""The population simulator of the region, with ground truth.

Public API (import from the modules; nothing heavy is imported with the package):
    synthetic.config.SimulatorConfig                 every parameter, typed and frozen, sources beside them
    synthetic.simulate.simulate(config) -> SimulatedDataset
                                                     events, customers, metadata + truth (risk, latent,
                                                     interventions); pure, writes nothing
    synthetic.io.write_simulated(dataset, out)       the dataset folder + truth/, written atomically
    synthetic.calibration.compare_to_targets(dataset) measured vs the public figures the simulator claims

See synthetic/README.md for the model and how the truth is computed.
"""
