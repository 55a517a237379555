"""Sources as they really arrive: .xlsx and .csv files with Chinese headers, turned into
envelopes by a mapping (docs/tabular-import.md).

    mapping = load_mapping("payments")           # built-in, or a path to a .toml file
    result = read_workbook("2024-03.xlsx", mapping.with_constants({"region": "110105"}),
                           source="bank-daifa")  # convert only: envelopes and row errors
    result = import_workbook(path, mapping, stub, token, source="bank-daifa")  # send
"""

from humiao.tabular.importer import ImportResult, import_workbook, read_workbook
from humiao.tabular.mapping import MappingError, TableMapping, builtin_names, load_mapping
from humiao.tabular.readers import Limits, TableError

__all__ = [
    "ImportResult",
    "Limits",
    "MappingError",
    "TableError",
    "TableMapping",
    "builtin_names",
    "import_workbook",
    "load_mapping",
    "read_workbook",
]
