"""interrupt.py's events: the fields the provisioner's parser keys on (version, source, detail-type)
and reads (the instance IDs)."""

import unittest

from interrupt import KINDS, event


class EventTest(unittest.TestCase):
    def test_each_kind_names_its_instance(self) -> None:
        for kind in KINDS:
            e = event(kind, "i-0abc", "ap-southeast-1", "123456789012")
            self.assertEqual(e["version"], "0")
            if kind == "scheduled-change":
                self.assertEqual((e["source"], e["detail-type"]), ("aws.health", "AWS Health Event"))
                self.assertEqual(e["detail"]["affectedEntities"], [{"entityValue": "i-0abc"}])
                self.assertEqual((e["detail"]["service"], e["detail"]["eventTypeCategory"]),
                                 ("EC2", "scheduledChange"))
            else:
                self.assertEqual(e["source"], "aws.ec2")
                self.assertEqual(e["detail"]["instance-id"], "i-0abc")

    def test_state_changes_carry_the_state(self) -> None:
        e = event("state-change", "i-0abc", "ap-southeast-1", "123456789012", "terminated")
        self.assertEqual(e["detail"]["state"], "terminated")
        self.assertEqual(e["detail-type"], "EC2 Instance State-change Notification")

    def test_an_unknown_kind_is_refused(self) -> None:
        with self.assertRaises(ValueError):
            event("meteor", "i-0abc", "ap-southeast-1", "123456789012")


if __name__ == "__main__":
    unittest.main()
