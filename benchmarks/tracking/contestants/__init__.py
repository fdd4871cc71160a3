"""The tracking benchmark's contestants, one module each (the contract: ``..contestant``)."""
