"""Engine-independent parts of the clients: argument checks, connecting, fan-out."""
