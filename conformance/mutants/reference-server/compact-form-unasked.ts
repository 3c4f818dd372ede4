import { defineMutant } from "../../src/runner/mutant.js";

export default defineMutant({
  name: "compact-form-unasked",
  area: "SUB",
  caughtBy: ["subscription.cancel-leaves-others-running"],
  description: "A subscription whose request leaves delivery_form unset is delivered in the compact form (only DELIVERY_FORM_FULL gets the full one).",
  edits: [
    {
      file: "services/compact-delivery.ts",
      find: "  return deliveryForm === v1.DeliveryForm.DELIVERY_FORM_COMPACT;\n",
      replace: "  return deliveryForm !== v1.DeliveryForm.DELIVERY_FORM_FULL;\n",
    },
  ],
});
