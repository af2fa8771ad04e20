-- Who may run the wizard. token_hash: the SHA-256 of the setup token that picd writes to
-- `setup-token` in its state directory at start (the token itself is never stored here).
-- claim_hash: the SHA-256 of the secret held by the one session that claimed the wizard with
-- that token; a new claim replaces it, so the previous session loses the wizard. Both are
-- cleared when setup completes.
ALTER TABLE setup_state ADD COLUMN token_hash TEXT;
ALTER TABLE setup_state ADD COLUMN claim_hash TEXT;
