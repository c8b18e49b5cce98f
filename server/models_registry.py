"""Imports every module that defines tables, so SQLModel.metadata knows them all."""

import auth.models  # noqa: F401
