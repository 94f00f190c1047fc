"""Operating Revenge: the commands behind ``revenge backup`` and ``revenge restore``."""
