"""The paper's studies at CPU scale: Table 3's ablations and their study, the brightness sweep, comparison sheets,
the demo and the model zoo of weights the project trained."""
