"""How SmartVault reads and writes its files: policies (YAML), plans (JSON), plans for people."""
