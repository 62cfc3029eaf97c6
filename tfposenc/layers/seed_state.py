"""Saving a layer's random-seed state with its weights."""


class SavesSeedState:
    """Mixin for a layer or model whose only own state is `self.seed_generator`.

    Keras does not save `SeedGenerator` states in `.keras` files; with this mixin the
    state is stored as the layer's own variable, so a reloaded layer continues the same
    random sequence as the layer that was saved.
    """

    def save_own_variables(self, store):
        store["0"] = self.seed_generator.state

    def load_own_variables(self, store):
        if "0" in store:
            self.seed_generator.state.assign(store["0"])
