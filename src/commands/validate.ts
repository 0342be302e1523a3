import {BaseCommand} from '../cli/base-command.js'
import {describeTopology} from '../inventory/topology.js'

export default class Validate extends BaseCommand<typeof Validate> {
  static summary = 'Check an inventory and print the resolved topology.'
  static description =
    'Reports every problem at once with file:line:column, the field and a hint (exit 2), or prints which host runs what. Local files the inventory names (tarballs, identity files) that do not exist yet are warnings (exit 0): init and join refuse them. No host is contacted and nothing is downloaded.'
  static examples = ['<%= config.bin %> validate -i inventories/example.yaml']
  static enableJsonFlag = true
  static flags = {}

  async run(): Promise<unknown> {
    const cluster = this.cluster({checkFiles: 'warning', credentials: 'warning'})
    const topology = describeTopology(cluster)
    this.log(topology.text)
    return topology.json
  }
}
