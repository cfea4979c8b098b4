"""Import of historian exports (wide/long CSV, Parquet) into the time-series store and catalogue."""
