"""Data contracts: what valid data is, checked at every boundary.

Public API:
    load_code_catalogue()                       the code catalogue (codes.csv) as a DataFrame
    validate_events / validate_customers / validate_history / validate_dataset / validate_labels / validate_predictions
    read_dataset(dir) -> Dataset, write_dataset(dataset, dir)
    export_meds(dataset, out), import_meds(in_dir) -> Dataset
    data_contracts.meds_tasks: MEDS labels per task (censored rows apart) and test predictions
    ContractError (a SoteRiskError), Failure
"""

from data_contracts.catalogue import load_code_catalogue
from data_contracts.errors import ContractError, Failure
from data_contracts.io import Dataset, read_dataset, write_dataset
from data_contracts.meds_format import export_meds, import_meds, from_meds_data, to_meds_data
from data_contracts.validate import (
    validate_customers,
    validate_dataset,
    validate_events,
    validate_history,
    validate_labels,
    validate_predictions,
)

__all__ = [
    "ContractError",
    "Dataset",
    "Failure",
    "export_meds",
    "from_meds_data",
    "import_meds",
    "load_code_catalogue",
    "read_dataset",
    "to_meds_data",
    "validate_customers",
    "validate_dataset",
    "validate_events",
    "validate_history",
    "validate_labels",
    "validate_predictions",
    "write_dataset",
]
