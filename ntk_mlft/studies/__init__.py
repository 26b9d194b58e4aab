"""End-to-end studies built from the pieces: the error model of a problem or pilot file
(``error_model.build_error_model`` → ``ErrorModelSetup``, the one construction every command
uses) and the trained finite-width networks that check it (``trained_networks``)."""
